from pydantic import BaseModel, ConfigDict, EmailStr, Field

Password = Field(min_length=8, max_length=200)


class Registration(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    password: str = Password
    display_name: str = Field(min_length=1, max_length=100, pattern=r"^[^\x00]*$")  # no NUL


class Credentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    password: str = Field(max_length=200)


class UserRead(BaseModel):
    id: int
    email: str
    display_name: str


class CsrfToken(BaseModel):
    csrf_token: str
